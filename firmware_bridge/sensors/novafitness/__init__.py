"""Nova Fitness particulate matter sensors."""
