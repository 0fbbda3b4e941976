"""Kura settings, read from the environment (django-environ).

With nothing set you get the *embedded* profile: SQLite and media under ``var/``,
filesystem storage and a Celery broker that needs no server. Setting ``DATABASE_URL``,
``CELERY_BROKER_URL`` and ``KURA_STORAGE=s3`` (plus the ``AWS_*`` variables) gives the
production profile: PostgreSQL, Redis and S3.

Production mode is the default on either profile: ``DEBUG`` is off and Kura will not start
without ``DJANGO_SECRET_KEY`` and ``DJANGO_ALLOWED_HOSTS``. Development asks for itself
with ``DJANGO_DEBUG=true`` (``bin/run`` and the tests set it), so a deployment that forgets
a variable never serves debug pages or a well-known secret key.
"""

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env.read_env(BASE_DIR / ".env")  # optional; a missing file is fine

VAR_DIR = Path(env.str("KURA_VAR_DIR", default=str(BASE_DIR / "var")))

# Off unless asked for: a forgotten variable must leave a deployment safe, not in debug mode.
DEBUG = env.bool("DJANGO_DEBUG", default=False)


def _required_in_production(name: str) -> str:
    """Return a variable that production (DEBUG off) must set, or stop startup."""
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(
            f"{name} must be set when DJANGO_DEBUG is false, its default (Kura will not "
            "start without it). For development set DJANGO_DEBUG=true, as bin/run does."
        )
    return value


if DEBUG:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="kura-embedded-profile-insecure-key")
    ALLOWED_HOSTS = env.list(
        "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
    )
else:
    SECRET_KEY = _required_in_production("DJANGO_SECRET_KEY")
    ALLOWED_HOSTS = [h.strip() for h in _required_in_production("DJANGO_ALLOWED_HOSTS").split(",")]

CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django.contrib.sitemaps",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "dmp",
    "repository",
    # Sign-in lockout after repeated wrong passwords (django-axes; see the README).
    "axes",
    # The Content-Security-Policy header (django-csp; the policy is under "Security").
    "csp",
    # GakuNin (SAML 2.0) sign-in; its routes answer 404 unless KURA_SAML_ENABLED (README).
    "djangosaml2",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.http.ContentSecurityPolicyMiddleware",
    "core.http.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The SAML exchange's own session (its cookie survives the IdP's cross-site POST).
    "djangosaml2.middleware.SamlSessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Answers a locked-out sign-in with the lockout page (django-axes).
    "axes.middleware.AxesMiddleware",
    # Innermost: a view's database or storage outage becomes a 503 with Retry-After.
    "config.outages.OutageMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dmp.context_processors.navigation",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'kura.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # The embedded profile serves a browser batch (six part uploads at once, several files
    # starting and completing together) beside a checksumming worker and beat, all writing
    # one file. WAL lets readers and one writer work at once; IMMEDIATE transactions take
    # the write lock when they begin, so two writers queue on the busy timeout instead of
    # one failing with "database is locked" when it upgrades a read lock; a lock held longer
    # than the timeout still answers 503 with Retry-After (config/outages.py), never 500.
    _sqlite = DATABASES["default"].setdefault("OPTIONS", {})
    _sqlite.setdefault("timeout", env.int("KURA_SQLITE_TIMEOUT", default=30))
    _sqlite.setdefault("transaction_mode", "IMMEDIATE")
    _sqlite.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "signed-in"  # My page for a newcomer, else home (repository/mine)
LOGOUT_REDIRECT_URL = "home"

# Sign-in throttling (django-axes, a maintained library): after KURA_LOGIN_FAILURE_LIMIT
# wrong passwords for one username from one address, that pair is locked out for
# KURA_LOGIN_COOLOFF_MINUTES (the page says so, 429 with Retry-After). The pair, not the
# username alone, so nobody can lock a colleague out from elsewhere; the address is the
# one the API's rate limit counts (KURA_API_NUM_PROXIES, core/http.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Answers only ORCID's callback (/oidc/callback/), and only with ORCID switched on.
    "accounts.orcid.OrcidBackend",
    # Passwords (unless KURA_LOCAL_PASSWORDS is off) and every account's permissions.
    "accounts.backends.LocalPasswordBackend",
    # GakuNin: signs in only with a verified SAML assertion (accounts/saml/).
    "accounts.saml.backend.KuraSaml2Backend",
]
# Local passwords: on for the demo and small deployments; off, the login page offers only
# the other sign-in methods and no password (login page, admin) is accepted.
KURA_LOCAL_PASSWORDS = env.bool("KURA_LOCAL_PASSWORDS", default=True)
AXES_FAILURE_LIMIT = env.int("KURA_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("KURA_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.http.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.locked_out"
AXES_VERBOSE = False
# Bad API tokens from one address: after this many within the window, 429 for the window.
KURA_API_TOKEN_FAILURE_LIMIT = env.int("KURA_API_TOKEN_FAILURE_LIMIT", default=20)
KURA_API_TOKEN_FAILURE_WINDOW = env.int("KURA_API_TOKEN_FAILURE_WINDOW", default=600)

# --- ORCID sign-in (OpenID Connect, mozilla-django-oidc; accounts/orcid.py) ------------
# Off unless KURA_ORCID_CLIENT_ID is set. KURA_ORCID_BASE_URL is https://orcid.org in
# production and https://sandbox.orcid.org for testing; the endpoints derive from it (each
# can be set on its own for another deployment of ORCID's software). The README's
# "Registering an ORCID client" says how to get the client id and secret.
KURA_ORCID_CLIENT_ID = env.str("KURA_ORCID_CLIENT_ID", default="")
KURA_ORCID_BASE_URL = env.str("KURA_ORCID_BASE_URL", default="https://orcid.org").rstrip("/")
KURA_ORCID_ISSUER = env.str("KURA_ORCID_ISSUER", default=KURA_ORCID_BASE_URL)
# A first sign-in with an iD no account holds makes an account (just in time); off, such a
# person must sign in another way first and link their iD.
KURA_ORCID_CREATE_ACCOUNTS = env.bool("KURA_ORCID_CREATE_ACCOUNTS", default=True)
# Seconds the ID token's time claims (iat, exp, nbf) may be off, for clocks that differ.
KURA_ORCID_LEEWAY_SECONDS = env.int("KURA_ORCID_LEEWAY_SECONDS", default=60)
OIDC_RP_CLIENT_ID = KURA_ORCID_CLIENT_ID
OIDC_RP_CLIENT_SECRET = env.str("KURA_ORCID_CLIENT_SECRET", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str(
    "KURA_ORCID_AUTHORIZATION_ENDPOINT", default=f"{KURA_ORCID_BASE_URL}/oauth/authorize"
)
OIDC_OP_TOKEN_ENDPOINT = env.str(
    "KURA_ORCID_TOKEN_ENDPOINT", default=f"{KURA_ORCID_BASE_URL}/oauth/token"
)
OIDC_OP_USER_ENDPOINT = env.str(
    "KURA_ORCID_USERINFO_ENDPOINT", default=f"{KURA_ORCID_BASE_URL}/oauth/userinfo"
)
OIDC_OP_JWKS_ENDPOINT = env.str(
    "KURA_ORCID_JWKS_ENDPOINT", default=f"{KURA_ORCID_BASE_URL}/oauth/jwks"
)
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = "openid"
OIDC_USE_NONCE = True
OIDC_TIMEOUT = env.float("KURA_ORCID_TIMEOUT", default=10.0)
OIDC_STORE_ACCESS_TOKEN = False
OIDC_STORE_ID_TOKEN = False

# --- Internationalisation -------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ja", _("Japanese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("KURA_TIME_ZONE", default="Asia/Tokyo")
USE_I18N = True
USE_TZ = True

# --- Static files and storage ---------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
if DEBUG:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing

KURA_STORAGE = env.str("KURA_STORAGE", default="filesystem")
if KURA_STORAGE not in {"filesystem", "s3"}:
    raise ImproperlyConfigured("KURA_STORAGE must be 'filesystem' or 's3'.")

if KURA_STORAGE == "s3":
    AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
    if not AWS_STORAGE_BUCKET_NAME:
        raise ImproperlyConfigured("AWS_STORAGE_BUCKET_NAME must be set when KURA_STORAGE=s3.")
    AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default=None)
    AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="us-east-1")
    AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default=None)
    AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default=None)
    AWS_S3_ADDRESSING_STYLE = env.str("AWS_S3_ADDRESSING_STYLE", default="path")
    AWS_S3_SIGNATURE_VERSION = "s3v4"
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = True
    AWS_QUERYSTRING_EXPIRE = 300
    AWS_S3_FILE_OVERWRITE = False
    DEFAULT_STORAGE = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {}}
else:
    DEFAULT_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }

STORAGES = {
    "default": DEFAULT_STORAGE,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        ),
    },
}

# --- Celery ---------------------------------------------------------------------------
# The embedded profile uses kombu's filesystem transport: a real worker and beat, no server.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery" / "broker"
    for _sub in ("broker", "processed", "results", "control"):
        (VAR_DIR / "celery" / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    _default_result_backend = f"file://{VAR_DIR / 'celery' / 'results'}"
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("KURA_CHECKSUM_TIME_LIMIT", default=24 * 60 * 60) + 3600
    }
    _default_result_backend = CELERY_BROKER_URL
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=_default_result_backend)
CELERY_RESULT_EXPIRES = 60 * 60 * 24
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="kura")
# Housekeeping (requeues, sweeps, embargo lifting) has a queue of its own, so a backlog of
# checksums never delays it; every worker consumes both unless told otherwise (README).
KURA_HOUSEKEEPING_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-housekeeping"
# Previews (thumbnails, IIIF tiles, sequencing summaries) have a queue of their own too,
# queued only once a checksum has succeeded: a checksum never waits behind a preview as
# long as the preview queue has workers of its own (bin/run starts one; README).
KURA_PREVIEW_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-preview"
CELERY_TASK_QUEUES = [
    # A worker started without -Q consumes all three (a deployment gives previews their
    # own worker, as bin/run does, so that a long preview never holds up a checksum).
    Queue(CELERY_TASK_DEFAULT_QUEUE),
    Queue(KURA_HOUSEKEEPING_QUEUE),
    Queue(KURA_PREVIEW_QUEUE),
]
# The fixity sweep stays on the checksum queue: it hashes (up to a batch of objects, for
# up to 50 minutes), which would hold up a worker that only does housekeeping.
CELERY_TASK_ROUTES = {
    name: {"queue": KURA_HOUSEKEEPING_QUEUE}
    for name in (
        "kura.abandoned_uploads_sweep",
        "kura.checksum_requeue",
        "kura.doi_requeue",
        "kura.doi_sync",  # a DOI call waits on the provider, never on a checksum
        "kura.embargo_lift",
        "kura.notify",  # e-mail must not wait behind a backlog of checksums
        "kura.storage_reconcile",
        "kura.tally_check",
        "kura.tally_fold",
        "kura.usage_fold",
    )
}
CELERY_TASK_ROUTES["kura.preview"] = {"queue": KURA_PREVIEW_QUEUE}
# A task is acknowledged when it ends, so a worker lost mid-task (killed, or stopped hard
# after its shutdown timeout) leaves the message to be delivered again; a pool child that
# dies hands its task back at once. A whole worker killed leaves the message unacknowledged
# until the visibility timeout, which must outlast the longest checksum (else a running
# hash would be delivered twice — harmless, the hashing lock lets one run — but wasteful);
# beat's requeue (kura.checksum_requeue, every minute) does not wait for it: a checksum
# left "verifying" whose hashing lock nobody holds is queued again at once.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Stopping a worker: SIGTERM is Celery's warm shutdown, which waits for a running hash
# (hours for a big file) — a deploy's stop timeout then kills it, and beat's requeue
# recovers the object. Better, run the worker with REMAP_SIGTERM=SIGQUIT: SIGTERM then
# starts Celery's (5.5+) soft shutdown — short tasks get this many seconds to finish, then
# the cold shutdown cancels what still runs and hands its unacknowledged message straight
# back to the broker for another worker (the hash restarts there from the beginning).
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = env.float("CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT", default=60)
# Kura's tasks report through the database, never through their results, so by default
# a task writes no result: a result backend that cannot write (the embedded profile's disk
# full) must not lose a delivered checksum. Tests that wait for a result ask for it.
CELERY_TASK_IGNORE_RESULT = True
# A broker that is down is given up on within a few seconds when a task is queued (the
# work is then kept in the database, repository/preservation/queue.py): a completion waits
# seconds, not minutes, before it answers.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 5 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 4 * 60
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE: dict = {
    # Re-verify the objects checked longest ago (KURA_FIXITY_*), a batch an hour.
    "fixity-sweep": {"task": "kura.fixity_sweep", "schedule": 60 * 60},
    # Abort multipart uploads idle for KURA_UPLOAD_ABANDON_AFTER_HOURS.
    "abandoned-uploads-sweep": {"task": "kura.abandoned_uploads_sweep", "schedule": 60 * 60},
    # Queue checksums the broker missed, and again those a lost worker or message left
    # pending or verifying (cheap: two indexed queries when nothing is stuck).
    "checksum-requeue": {"task": "kura.checksum_requeue", "schedule": 60},
    # Make public the embargoed objects whose available date has come (hourly, so an
    # embargo lifts within the hour after local midnight).
    "embargo-lift": {"task": "kura.embargo_lift", "schedule": 60 * 60},
    # Send again the DOI calls of published versions whose retries ran out or whose task
    # was never queued (repository/publishing/sync.py).
    "doi-requeue": {"task": "kura.doi_requeue", "schedule": 60 * 60},
    # Delete the bytes no row owns and abort the multipart uploads nobody waits on, older than six
    # hours (repository/preservation/reconcile.py; `manage.py kura_storage_reconcile` shows them).
    "storage-reconcile": {"task": "kura.storage_reconcile", "schedule": 24 * 60 * 60},
    # The dashboard's tallies against a recount of the objects; rebuilt if they differ
    # (repository/tally.py; `manage.py kura_tally --check` shows the difference).
    "tally-check": {"task": "kura.tally_check", "schedule": 24 * 60 * 60},
    # The changes appended by the objects' trigger, moved into the tallies.
    "tally-fold": {"task": "kura.tally_fold", "schedule": 60},
    # Views and downloads captured on the request path, folded into usage events
    # (repository/usage/fold.py: double clicks marked, in one COPY per batch).
    "usage-fold": {"task": "kura.usage_fold", "schedule": 60},
}
# Beat keeps its schedule on disk on every profile; its folder must exist on a fresh
# production deployment too (only the filesystem broker made it before).
(VAR_DIR / "celery").mkdir(parents=True, exist_ok=True)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celery" / "beat-schedule")
CELERY_TASK_ALWAYS_EAGER = False

# --- E-mail ---------------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="kura@localhost")

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so that a request without credentials gets 401 and a Bearer challenge.
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # Rates: KURA_API_THROTTLE_USER / _ANON below; counts are kept in the default cache.
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.throttling.UserRateThrottle",
        "accounts.throttling.AnonRateThrottle",
    ],
    # How many reverse proxies stand in front: 0 (the default) trusts no X-Forwarded-For
    # and uses REMOTE_ADDR; n takes the address the n-th proxy from the right saw.
    "NUM_PROXIES": env.int("KURA_API_NUM_PROXIES", default=0),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.api.NewestFirst",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "core.api.StableOrdering",
    ],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # The API speaks JSON only (the document says so; form bodies get a 415 in the error body).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Kura API",
    "DESCRIPTION": "Research data repository: projects, DMP records, data objects and uploads.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # An object's tier and a record's declared access rights share one vocabulary.
    "ENUM_NAME_OVERRIDES": {
        "TierEnum": "core.vocabularies.Tier.choices",
        "RequestStatusEnum": "repository.models.RequestStatus.choices",
    },
    # Separate request and response components: read-only fields are not asked for.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.document_errors",
    ],
    # /api/docs/: Swagger UI from the pinned drf-spectacular-sidecar package, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}


def _throttle_rate(name: str, default: str) -> str:
    """A DRF rate such as ``600/minute``; empty turns the limit off."""
    value = env.str(name, default=default).strip()
    if value and not re.fullmatch(r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(
            f"{name} must look like 600/minute (or be empty); got {value!r}."
        )
    return value


# Per signed-in user (session or API token) and per anonymous client address.
KURA_API_THROTTLE_USER = _throttle_rate("KURA_API_THROTTLE_USER", "1200/minute")
KURA_API_THROTTLE_ANON = _throttle_rate("KURA_API_THROTTLE_ANON", "120/minute")
# Dataset searches that miss the page cache, per signed-in user or per anonymous client
# address (an IPv6 /64 counts as one): each one queries the database, and a crafted stream
# of fresh queries must not occupy every worker.
KURA_SEARCH_THROTTLE = _throttle_rate("KURA_SEARCH_THROTTLE", "60/minute")

# --- Cache ----------------------------------------------------------------------------
# The one CACHES block: API throttling counts, the public page cache and the catalogue
# generation (core/generations.py). Shared by every web and worker process:
#   KURA_CACHE_URL=redis://host:6379/1  Django's built-in Redis cache (production, tests).
#                                       Use a database number other than the Celery broker's.
#   unset                               the embedded profile: files under var/cache.
KURA_CACHE_URL = env.str("KURA_CACHE_URL", default="")
if KURA_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            # Django's Redis cache, reusing its Redis clients (config/cache.py).
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": KURA_CACHE_URL,
            "KEY_PREFIX": env.str("KURA_CACHE_KEY_PREFIX", default="kura"),
        }
    }
elif KURA_CACHE_URL:
    raise ImproperlyConfigured("KURA_CACHE_URL must be a redis:// URL (or unset).")
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "KEY_PREFIX": env.str("KURA_CACHE_KEY_PREFIX", default="kura"),
        }
    }

# The dataset search counts matches up to this many ("more than …" past it) and its facets
# count the first this many: its cost is bounded by the cap, not by the number of records.
KURA_SEARCH_COUNT_CAP = env.int("KURA_SEARCH_COUNT_CAP", default=10_000)
if KURA_SEARCH_COUNT_CAP < 1:
    raise ImproperlyConfigured(
        f"KURA_SEARCH_COUNT_CAP must be at least 1; got {KURA_SEARCH_COUNT_CAP}."
    )
# Public pages (landing, search) cancel any query that runs longer (PostgreSQL; 0: none)
# and answer 503 with Retry-After instead of holding a worker (core/db.py).
KURA_PUBLIC_QUERY_TIMEOUT_MS = env.int("KURA_PUBLIC_QUERY_TIMEOUT_MS", default=5_000)
# Anonymous visitors' landing and search pages are cached this many seconds (0: off); any
# change to what they show invalidates them at once (core/generations.py). Off by default
# without Redis: the file cache has no atomic counter shared by web and worker processes.
KURA_PAGE_CACHE_SECONDS = env.int(
    "KURA_PAGE_CACHE_SECONDS",
    default=300 if CACHES["default"]["BACKEND"].endswith("RedisCache") else 0,
)
# Project dashboards' bodies (their figures, rendered) are cached this many seconds (0: off),
# under the catalogue and activity generations and the project's own, so any change to what
# they show shows at once and writes in other projects leave them cached.
KURA_DASHBOARD_CACHE_SECONDS = env.int(
    "KURA_DASHBOARD_CACHE_SECONDS", default=KURA_PAGE_CACHE_SECONDS
)
# Usage counting (COUNTER views and downloads, repository/usage/): each counted view or
# download appends one line to a buffer that kura.usage_fold folds every minute; off, no
# line is appended and the figures already counted stay.
KURA_USAGE_COUNTING = env.bool("KURA_USAGE_COUNTING", default=True)


# --- Security ---------------------------------------------------------------------------
# Content-Security-Policy on every page, development included (so a page that needs more is
# noticed at once): scripts, styles, fonts and workers from Kura itself only; WebAssembly
# for the upload page's hashing worker (hash-wasm); XHR to Kura and to the bucket the
# presigned URLs point at (added per request by core.http.ContentSecurityPolicyMiddleware,
# from the storage settings); nothing framed, no plugins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'wasm-unsafe-eval'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'", *env.list("KURA_CSP_CONNECT_SRC", default=[])],
        "worker-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Browser features no page of Kura uses (core.http.PermissionsPolicyMiddleware).
KURA_PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
    # KURA_TLS=true behind a TLS-terminating proxy (which sets X-Forwarded-Proto): plain
    # HTTP is redirected to HTTPS and browsers are told to use HTTPS only (HSTS).
    KURA_TLS = env.bool("KURA_TLS", default=False)
    SECURE_SSL_REDIRECT = KURA_TLS
    SECURE_HSTS_SECONDS = env.int("KURA_HSTS_SECONDS", default=31536000 if KURA_TLS else 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("KURA_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("KURA_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading binds the whole registered domain (often the university's) to HTTPS in
        # every browser: the institution's decision (KURA_HSTS_PRELOAD), not a default.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    # /healthz and /readyz answer monitors on plain HTTP inside the host.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- Kura -----------------------------------------------------------------------------
# Tiers that open data beyond the project: changing to them needs a curator's approval.
KURA_REVIEWED_TIERS = env.list("KURA_REVIEWED_TIERS", default=["public", "embargoed"])
# Four eyes: whoever asked to open data never decides it; with this on (the default) nor
# does a PM or data manager of the project (or the object's uploader). An installation
# whose only curator also manages projects turns it off (see README, "Security").
KURA_FOUR_EYES_EXCLUDE_STEWARDS = env.bool("KURA_FOUR_EYES_EXCLUDE_STEWARDS", default=True)
KURA_CURATOR_GROUP = "curators"
KURA_PROGRAM_OFFICER_GROUP = "program_officers"
KURA_DEMO_PASSWORD = env.str("KURA_DEMO_PASSWORD", default="")
# Where Kura is reached from outside: identifiers in exports (maDMP dmp_id) are built on it.
KURA_BASE_URL = env.str("KURA_BASE_URL", default="http://localhost:8000/")
# OAI-PMH: identifiers oai:<KURA_OAI_REPOSITORY_ID>:record/<pk>, where the repository
# identifier is a domain name (the oai-identifier scheme): by default KURA_BASE_URL's host,
# or kura.localhost while that is no domain name (localhost, an IP address). Records per
# list page. Identify's adminEmail: KURA_OAI_ADMIN_EMAIL, else DEFAULT_FROM_EMAIL.
_DOMAIN_NAME = r"[a-zA-Z][a-zA-Z0-9\-]*(\.[a-zA-Z][a-zA-Z0-9\-]*)+"
_BASE_HOST = urlsplit(KURA_BASE_URL).hostname or ""
KURA_OAI_REPOSITORY_ID = env.str(
    "KURA_OAI_REPOSITORY_ID",
    default=_BASE_HOST if re.fullmatch(_DOMAIN_NAME, _BASE_HOST) else "kura.localhost",
)
if not re.fullmatch(_DOMAIN_NAME, KURA_OAI_REPOSITORY_ID):
    raise ImproperlyConfigured(
        "KURA_OAI_REPOSITORY_ID must be a domain name such as kura.example.org; "
        f"got {KURA_OAI_REPOSITORY_ID!r}."
    )
KURA_OAI_PAGE_SIZE = env.int("KURA_OAI_PAGE_SIZE", default=100)
KURA_OAI_ADMIN_EMAIL = env.str("KURA_OAI_ADMIN_EMAIL", default="") or DEFAULT_FROM_EMAIL
KURA_HEALTH_TIMEOUT = env.float("KURA_HEALTH_TIMEOUT", default=3.0)
# /readyz (the deep check) answers callers with this bearer token, or direct loopback ones;
# its result is reused for this many seconds in each process.
KURA_HEALTH_TOKEN = env.str("KURA_HEALTH_TOKEN", default="")
KURA_HEALTH_CACHE_SECONDS = env.float("KURA_HEALTH_CACHE_SECONDS", default=5.0)
# Access grants to shared data: the expiry a PM or data manager is offered, and the latest
# expiry they may choose (days from today).
KURA_ACCESS_GRANT_DEFAULT_DAYS = env.int("KURA_ACCESS_GRANT_DEFAULT_DAYS", default=90)
KURA_ACCESS_GRANT_MAX_DAYS = env.int("KURA_ACCESS_GRANT_MAX_DAYS", default=730)
# Invitations to join a project: days until the link expires.
KURA_INVITATION_DAYS = env.int("KURA_INVITATION_DAYS", default=14)
# Audit trail pages: events per page.
KURA_AUDIT_PAGE_SIZE = env.int("KURA_AUDIT_PAGE_SIZE", default=50)

# DOIs of published versions (docs/architecture.md, "Published versions and DOIs"):
# "local" registers none; "datacite" needs a prefix and a repository account. The URL is
# DataCite's test REST API unless set (production: https://api.datacite.org/).
KURA_DOI_PROVIDER = env.str("KURA_DOI_PROVIDER", default="local")
if KURA_DOI_PROVIDER not in ("local", "datacite"):
    raise ImproperlyConfigured("KURA_DOI_PROVIDER must be 'local' or 'datacite'.")
KURA_DATACITE_PREFIX = env.str("KURA_DATACITE_PREFIX", default="")
KURA_DATACITE_USERNAME = env.str("KURA_DATACITE_USERNAME", default="")
KURA_DATACITE_PASSWORD = env.str("KURA_DATACITE_PASSWORD", default="")
KURA_DATACITE_URL = env.str("KURA_DATACITE_URL", default="https://api.test.datacite.org/")
KURA_DATACITE_TIMEOUT = env.float("KURA_DATACITE_TIMEOUT", default=30.0)
if KURA_DOI_PROVIDER == "datacite" and not (
    KURA_DATACITE_PREFIX and KURA_DATACITE_USERNAME and KURA_DATACITE_PASSWORD
):
    raise ImproperlyConfigured(
        "KURA_DOI_PROVIDER=datacite needs KURA_DATACITE_PREFIX, KURA_DATACITE_USERNAME "
        "and KURA_DATACITE_PASSWORD."
    )

# Uploads, checksums and fixity.
KURA_MAX_OBJECT_SIZE = env.int("KURA_MAX_OBJECT_SIZE", default=5 * 1024**4)  # 5 TiB
# Site-wide default quota per project in bytes; 0 means no limit. Project.quota_bytes wins.
KURA_PROJECT_QUOTA_BYTES = env.int("KURA_PROJECT_QUOTA_BYTES", default=0)
KURA_UPLOAD_MIN_PART_SIZE = 8 * 1024**2  # never below 8 MiB (S3 needs >= 5 MiB)
KURA_UPLOAD_MAX_PARTS = 10_000
# A large file is cut into about this many parts, of at most KURA_UPLOAD_LARGE_PART_SIZE;
# beyond that size it has more parts (repository/preservation/uploads.py part_size_for).
KURA_UPLOAD_PARTS_PER_FILE = 64
KURA_UPLOAD_LARGE_PART_SIZE = 32 * 1024**2
KURA_UPLOAD_PART_URL_EXPIRY = env.int("KURA_UPLOAD_PART_URL_EXPIRY", default=15 * 60)
KURA_UPLOAD_ABANDON_AFTER_HOURS = env.int("KURA_UPLOAD_ABANDON_AFTER_HOURS", default=24)
# Uploads one request of /api/v1/uploads/batch/ may start or complete (each answered alone).
KURA_UPLOAD_BATCH_MAX = env.int("KURA_UPLOAD_BATCH_MAX", default=100)
# How long a presigned download link works (seconds). A link already handed out keeps
# working until then even if access is taken away, so links to non-public objects are short.
KURA_DOWNLOAD_URL_EXPIRY = env.int("KURA_DOWNLOAD_URL_EXPIRY", default=300)
KURA_RESTRICTED_DOWNLOAD_URL_EXPIRY = env.int("KURA_RESTRICTED_DOWNLOAD_URL_EXPIRY", default=60)
KURA_UPLOAD_DIR = VAR_DIR / "uploads"  # parts of embedded-profile uploads in flight
# Origins whose pages may PUT parts straight to the bucket (kura_storage_setup).
KURA_UPLOAD_CORS_ORIGINS = env.list("KURA_UPLOAD_CORS_ORIGINS", default=["*"])
# A BagIt export of more public bytes than this lists download URLs in fetch.txt instead.
KURA_BAGIT_INLINE_MAX_BYTES = env.int("KURA_BAGIT_INLINE_MAX_BYTES", default=1024**3)
KURA_CHECKSUM_CHUNK_SIZE = env.int("KURA_CHECKSUM_CHUNK_SIZE", default=8 * 1024**2)
KURA_CHECKSUM_RANGE_SIZE = env.int("KURA_CHECKSUM_RANGE_SIZE", default=64 * 1024**2)
# A 1 TB object at a conservative 100 MB/s takes under three hours; allow a day.
KURA_CHECKSUM_TIME_LIMIT = env.int("KURA_CHECKSUM_TIME_LIMIT", default=24 * 60 * 60)
# A checksum still pending (or a re-verification still asked for) this long after it was
# queued is queued again: its message was lost. Short, as a duplicate costs two queries
# (the service runs once per object); a hash whose worker died is requeued at once.
KURA_CHECKSUM_REQUEUE_AFTER_MINUTES = env.int("KURA_CHECKSUM_REQUEUE_AFTER_MINUTES", default=10)
# A first verification that finds no stored file tries this many times (the task's retries
# spread them over several minutes) before the object is quarantined and reported missing.
KURA_CHECKSUM_MISSING_TRIES = env.int("KURA_CHECKSUM_MISSING_TRIES", default=8)
# A batch completion's objects of at most one chunk are verified this many per task
# (kura.checksum_many): one lock query, one claim, one write for the group.
KURA_CHECKSUM_GROUP_SIZE = env.int("KURA_CHECKSUM_GROUP_SIZE", default=50)
# Previews (repository/previews/): images of at most this many pixels get a thumbnail
# and IIIF tiles (50,000 x 50,000 by default); at most this many planes (channel x z) of an
# OME-TIFF get their own tiles; and a preview may run this long.
KURA_PREVIEW_MAX_PIXELS = env.int("KURA_PREVIEW_MAX_PIXELS", default=50_000 * 50_000)
KURA_PREVIEW_MAX_PLANES = env.int("KURA_PREVIEW_MAX_PLANES", default=8)
KURA_PREVIEW_TIME_LIMIT = env.int("KURA_PREVIEW_TIME_LIMIT", default=6 * 60 * 60)
# A CRAM of at most this many bytes has its reads per reference counted, in one streamed
# pass over the whole file (nothing written to disk; a CRAM index holds no counts); a larger
# one has its header only, and the page says why. 0: no CRAM is counted.
KURA_PREVIEW_CRAM_COUNT_MAX_BYTES = env.int(
    "KURA_PREVIEW_CRAM_COUNT_MAX_BYTES", default=64 * 1024**3
)
# A preview still pending this long after its object was verified, with no worker on it,
# is queued again by kura.checksum_requeue (its message was lost, or the broker was away).
KURA_PREVIEW_REQUEUE_AFTER_MINUTES = env.int("KURA_PREVIEW_REQUEUE_AFTER_MINUTES", default=30)
# Folder for a preview's working files (the image's bytes and its tiles, removed after):
# the system's temporary folder unless set.
KURA_PREVIEW_WORK_DIR = env.str("KURA_PREVIEW_WORK_DIR", default="") or None
KURA_FIXITY_INTERVAL_DAYS = env.int("KURA_FIXITY_INTERVAL_DAYS", default=90)
KURA_FIXITY_BATCH_SIZE = env.int("KURA_FIXITY_BATCH_SIZE", default=100)

# --- GakuNin (SAML 2.0) sign-in -------------------------------------------------------
# Off unless KURA_SAML_ENABLED; see the README, "Joining GakuNin". Kura's SP metadata is at
# /saml2/metadata/, its entityID that URL unless KURA_SAML_SP_ENTITY_ID says otherwise.
KURA_SAML_ENABLED = env.bool("KURA_SAML_ENABLED", default=False)
KURA_SAML_SP_ENTITY_ID = env.str("KURA_SAML_SP_ENTITY_ID", default="")
KURA_SAML_SP_NAME = env.str("KURA_SAML_SP_NAME", default="Kura")
KURA_SAML_SP_KEY_FILE = env.str("KURA_SAML_SP_KEY_FILE", default="")
KURA_SAML_SP_CERT_FILE = env.str("KURA_SAML_SP_CERT_FILE", default="")
KURA_SAML_CONTACT_NAME = env.str("KURA_SAML_CONTACT_NAME", default="")
KURA_SAML_CONTACT_EMAIL = env.str("KURA_SAML_CONTACT_EMAIL", default="")
# The federation's metadata aggregate (a URL or a local file), whose signature must verify
# against the federation's certificate; reloaded this often (seconds).
KURA_SAML_METADATA_URL = env.str("KURA_SAML_METADATA_URL", default="")
KURA_SAML_METADATA_FILE = env.str("KURA_SAML_METADATA_FILE", default="")
KURA_SAML_METADATA_CERT = env.str("KURA_SAML_METADATA_CERT", default="")
KURA_SAML_METADATA_REFRESH_SECONDS = env.int("KURA_SAML_METADATA_REFRESH_SECONDS", default=3600)
KURA_SAML_METADATA_TIMEOUT = env.float("KURA_SAML_METADATA_TIMEOUT", default=30.0)
# An external discovery service (GakuNin's DS); unset, Kura shows its own IdP chooser.
KURA_SAML_DISCOVERY_URL = env.str("KURA_SAML_DISCOVERY_URL", default="")
# First sign-in makes an account (just in time); off, only linked identities sign in.
KURA_SAML_CREATE_ACCOUNTS = env.bool("KURA_SAML_CREATE_ACCOUNTS", default=True)
KURA_SAML_CLOCK_SKEW_SECONDS = env.int("KURA_SAML_CLOCK_SKEW_SECONDS", default=60)
KURA_SAML_XMLSEC_BINARY = env.str("KURA_SAML_XMLSEC_BINARY", default="/usr/bin/xmlsec1")
if KURA_SAML_ENABLED:
    _saml_missing = [
        name
        for name in ("KURA_SAML_SP_KEY_FILE", "KURA_SAML_SP_CERT_FILE", "KURA_SAML_METADATA_CERT")
        if not globals()[name]
    ]
    if not (KURA_SAML_METADATA_URL or KURA_SAML_METADATA_FILE):
        _saml_missing.append("KURA_SAML_METADATA_URL or KURA_SAML_METADATA_FILE")
    if _saml_missing:
        raise ImproperlyConfigured(f"KURA_SAML_ENABLED needs {', '.join(_saml_missing)}.")
# djangosaml2 (accounts/saml/): the configuration is built from the settings above.
SAML_CONFIG_LOADER = "accounts.saml.config.sp_config"
SAML2_DISCO_URL = KURA_SAML_DISCOVERY_URL or None
SAML_DEFAULT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
SAML_ATTRIBUTE_MAPPING: dict = {}  # the backend maps the attributes itself
SAML_CREATE_UNKNOWN_USER = KURA_SAML_CREATE_ACCOUNTS
SAML_SESSION_COOKIE_NAME = "kura_saml_session"
# The IdP POSTs its answer cross-site: the SAML session cookie must come with it, which
# browsers allow for SameSite=None only on a Secure cookie (plain-HTTP development: Lax,
# which still works while the IdP is on the same site, as in the tests).
SAML_SESSION_COOKIE_SAMESITE = "None" if globals().get("SESSION_COOKIE_SECURE") else "Lax"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}
