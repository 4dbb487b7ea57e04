"""ftp_pose.viz"""
