"""Settings for the web load benchmark: the project's, plus a bare view to compare with."""

from pocclient.settings import *  # noqa: F403 (the project as it runs, and one URL more)

ROOT_URLCONF = "bench.urls"
