"""ftp_pose.experiments: commands that run studies on top of the engine.

``ablate`` (Tables II and III by training each configuration, cached per configuration and
seed) and ``gpu_check`` (the one-call GPU check of the speed work). Imports ``engine``,
``models`` and ``bench``; nothing in ``engine``, ``models`` or ``data`` imports it.
"""
