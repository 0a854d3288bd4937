"""Newport ESP301 three-axis motion controller: one `NewportAxis` device per axis, one shared line."""
