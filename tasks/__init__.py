"""Domain logic and the @task wrappers the flows call.

Pure modules here never import Prefect; modules that do say so in their docstring.
"""
