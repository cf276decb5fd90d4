from repro_hooks.cli import main

raise SystemExit(main())
