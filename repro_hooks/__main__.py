from repro_hooks.entry import main

raise SystemExit(main())
