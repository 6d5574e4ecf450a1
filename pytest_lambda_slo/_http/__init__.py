"""The HTTP/1.1 client the engine sends with: connections, parsing, TLS, proxies."""
