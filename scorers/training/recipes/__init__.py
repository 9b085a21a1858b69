"""The shipped training recipes, one YAML file each (read by ``recipe.load_recipe``)."""
