"""The console's screens: the main screen and the guard's forms, each a modal screen."""
