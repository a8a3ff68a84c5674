"""Running trials on Ray: the cluster connection, the worker (the objective's side), the
pool (the driver's side), and the artifacts a trial stores."""
