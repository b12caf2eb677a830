"""The only place that talks to Azure: clients, observe (SDK -> model), write (model -> SDK), errors.

SDK models never leave this package: observe returns `reconciler.plan.ObservedPolicy`, and writes take ARM
wire JSON produced by `reconciler.arm`.
"""
