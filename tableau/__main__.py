from tableau.generate import main

raise SystemExit(main())
