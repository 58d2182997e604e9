from pytest_nni_docker.cli import main

raise SystemExit(main())
