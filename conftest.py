"""Settings shared by the plugin's own tests and the examples."""

import os

# Hosts of this project have no registry: the testcontainers reaper image cannot
# be pulled, and the plugin's label-based cleanup does its job.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
