"""What the CLI offers people beyond planning and applying: `init`'s scaffold and `validate`'s
verdict cache. Not engine work, so kept out of ``mlstack.engine``; below the CLI, above the engine."""
