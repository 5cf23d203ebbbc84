"""Hessian-vector products and their estimators, for one model or many stacked as one."""
