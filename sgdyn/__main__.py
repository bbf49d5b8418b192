from sgdyn.cli import main

raise SystemExit(main())
