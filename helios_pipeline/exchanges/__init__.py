"""Exchange access: ccxt client, rate limiter, circuit breaker, retry, simulated exchange."""
