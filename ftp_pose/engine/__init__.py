"""ftp_pose.engine"""
