"""The Functions app: it only registers the blueprints of the `registry` package."""

import azure.functions as func

from registry.blueprints import jobs, models_api, registration_api

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(registration_api.bp)
app.register_functions(models_api.bp)
app.register_functions(jobs.bp)
