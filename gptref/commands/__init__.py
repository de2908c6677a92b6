"""One module per `python -m gptref` command: each has add_arguments(parser) and run(args)."""
