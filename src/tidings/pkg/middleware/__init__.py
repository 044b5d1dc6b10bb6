"""Middleware for both transports, in the Kratos order: recovery -> validation -> the handler.

Recovery opens the server span, sets the request deadline and turns every error into the wire form of a
``TidingsError`` (an unexpected exception becomes 500 INTERNAL with the trace id, logged with its stack);
validation rejects input the contracts rule out with 400 naming each field. Client middleware brings downstream
errors back as the same ``TidingsError`` and passes the deadline and trace on.
"""
