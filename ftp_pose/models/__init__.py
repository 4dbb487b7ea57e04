"""ftp_pose.models"""
