"""Development tools: the WeCom simulator, the sandbox and its console. Imported only by the
CLI and the tests; production never loads them."""
