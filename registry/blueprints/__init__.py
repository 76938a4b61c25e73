"""Azure Functions blueprints: thin entry points that parse, call a service, map the result."""
