"""What is loaded: HTTP front doors and the Lambda Invoke API; build and classify requests."""
