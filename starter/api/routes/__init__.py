"""The API's routes, one module per resource: each handler takes its request apart and calls the service of the
same name (`starter/api/<resource>.py`), which does the work for the API and the Studio alike."""
