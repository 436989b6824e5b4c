"""HTTP only: one blueprint module per resource; handlers validate, call one service, return."""
