"""Model registry on Azure Functions: register models and copy their files server-side."""
