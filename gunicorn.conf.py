"""gunicorn's settings for pocclient in production.

gunicorn reads this file from the working directory, so from the repository root
`gunicorn pocclient.wsgi` is enough. Override any setting without editing the file, on the
command line (`--workers 4`) or in GUNICORN_CMD_ARGS; both take precedence over this file.

gthread workers: each process serves `threads` requests at once. A console batch is a job,
sent by `manage.py db_worker` processes (POC_EMBEDDED_WORKER is off in production); the request
that follows its progress holds one thread while it streams.
"""

import os
import runpy
import sys

wsgi_app = "pocclient.wsgi:application"
bind = ["0.0.0.0:8000"]
worker_class = "gthread"
workers = 2
threads = 8
# With gthread, a long request (a streaming batch) does not stall the worker's heartbeat:
# this only restarts a worker that is stuck as a whole.
timeout = 60
graceful_timeout = 30
keepalive = 5
accesslog = "-"
# Trust X-Forwarded-* only from a proxy on this host; widen when the proxy runs elsewhere.
forwarded_allow_ips = "127.0.0.1,::1"
# gunicorn's control socket has one default path per user: a second instance on the host (or a
# test run) would take it over. Enable it with --control-socket PATH when you use gunicornc.
control_socket_disable = True


def on_starting(server: object) -> None:
    """Refuse to start on a bad environment value with one line naming it, exit status 2,
    before binding a port or booting a worker (each would fail alike; see pocclient/wsgi.py).

    The settings run in a throwaway namespace: the workers, not this master process, load the
    settings they serve with.
    """
    from django.core.exceptions import ImproperlyConfigured

    try:
        runpy.run_module(os.environ.get("DJANGO_SETTINGS_MODULE", "pocclient.settings"))
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"ImproperlyConfigured: {exc}\n")
        sys.exit(2)
