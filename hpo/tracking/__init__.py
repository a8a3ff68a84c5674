"""What hpo keeps in MLflow: the names it writes (schema), the writer, the reader, and
the sweep's best model."""
