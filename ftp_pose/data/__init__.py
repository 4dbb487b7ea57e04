"""ftp_pose.data"""
