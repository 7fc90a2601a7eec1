"""covariance layer."""
