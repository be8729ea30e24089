"""The comparison runner: app × variant × seed matrices of real runs, and an honest A/B report."""
