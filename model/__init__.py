"""The network, its configuration and the tokenizer: shared by training and serving.

``model.tokenizer`` and ``model.config`` are pure Python so the service can import them
without torch; ``model.network`` needs torch and is used only by the training pipeline.
"""
