"""Developer tools for the course (not shipped to students): the notebook builder."""
