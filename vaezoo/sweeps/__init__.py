"""Many runs from one base spec: the grid of points, their executors (processes or Ray) and the board."""
