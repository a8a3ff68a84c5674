"""What a sweep shows people: the closing summary, figures, learning curves, parameter
importance, and `hpo show`'s text."""
