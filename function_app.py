"""The Functions app: it only registers the blueprints of the `registry` package."""

import os

import azure.functions as func

from registry.blueprints import (
    maintenance,
    models_api,
    registration_api,
    servicebus_jobs,
    storage_jobs,
    webhooks_api,
)
from registry.settings import STORAGE_CONNECTION, current_settings, job_queue_kind
from registry.web import views as web_catalog

if os.environ.get(STORAGE_CONNECTION) or os.environ.get(f"{STORAGE_CONNECTION}__accountName"):
    # Refuse to start on unsafe or broken settings, saying why, rather than fail every request.
    current_settings()

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(registration_api.bp)
app.register_functions(models_api.bp)
app.register_functions(webhooks_api.bp)
app.register_functions(maintenance.bp)
app.register_functions(web_catalog.bp)
# One job worker, on the queue the settings choose (the host indexes this at start-up).
app.register_functions(servicebus_jobs.bp if job_queue_kind(os.environ) == "servicebus" else storage_jobs.bp)
