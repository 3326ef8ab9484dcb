from pixverse_mcp.cli import main

raise SystemExit(main())
