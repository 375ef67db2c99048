"""Meta-World v3 tasks behind language instructions: env, camera and scripted experts."""
