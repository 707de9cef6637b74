"""What a vault holds that no backup blob carries: key rotation policies, certificate contacts and issuers.

``model.py`` holds them as IO-free values, ``stage.py`` decides and copies them once per run.
"""
