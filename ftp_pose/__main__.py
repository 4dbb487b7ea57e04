from ftp_pose.cli import main

raise SystemExit(main())
