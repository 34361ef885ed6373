"""Service providers: one per AWS API this server speaks."""
