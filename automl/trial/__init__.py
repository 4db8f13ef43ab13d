"""What runs inside a Ray worker for one trial."""
