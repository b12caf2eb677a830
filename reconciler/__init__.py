"""amlfw: keep an Azure Firewall Policy in step with what Azure Machine Learning needs."""

__version__ = "0.1.0"
