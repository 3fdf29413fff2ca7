"""The `fcgrad` commands, one module a group: `data` (download, normalize), `train`,
`gradcheck` and `bench`. `fcgrad.cli.app` registers them on its `app`."""

import fcgrad.cli.app  # noqa: F401  (a command module imported first still gets a whole app)
