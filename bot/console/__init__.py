"""The agent console (issue #5): a Rasa input channel serving the web console and its API."""
