"""AWS specifics: credentials and SigV4, forced cold starts, cost, the REPORT line."""
