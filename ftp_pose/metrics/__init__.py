"""ftp_pose.metrics"""
