"""Large-order notifications: one SNS message per invoice whose total reaches the threshold."""
