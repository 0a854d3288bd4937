"""The lab in a browser, and over HTTP for scripts: `tangolab web` (a service of the lab, run by its
supervisor when the lab file has a `tangolab.web` section)."""
